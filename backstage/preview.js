#!/usr/bin/env node
// Render a template folder the way Backstage's `fetch:template` does with `cookiecutterCompat: true`,
// without a Backstage instance: same nunjucks configuration (autoescape off, `{{ }}` variables,
// installJinjaCompat, a `jsonify` filter), the values exposed as `cookiecutter`, every path rendered
// as one string relative to the template root, and the same rules for skipped paths. aistarter's tests
// use it to prove the portal produces the same bytes as the CLI; portal teams can use it to preview.
//
// usage: NODE_PATH=<node_modules with nunjucks@3 and isbinaryfile@5> node preview.js TEMPLATE_DIR VALUES_JSON OUT_DIR \
//          [--copy-without-templating PATTERN]...
// VALUES_JSON is the `values` object (what the aistarter context service returns under "values").
'use strict';

const fs = require('fs');
const path = require('path');
const nunjucks = require('nunjucks');
// The same package Backstage uses to decide which files are copied instead of rendered.
const { isBinaryFileSync } = require('isbinaryfile');

function parseArgs(argv) {
  const positional = [];
  const copyOnly = [];
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--copy-without-templating') {
      copyOnly.push(argv[i + 1]);
      i += 1;
    } else {
      positional.push(argv[i]);
    }
  }
  if (positional.length !== 3) {
    throw new Error('usage: preview.js TEMPLATE_DIR VALUES_JSON OUT_DIR [--copy-without-templating PATTERN]...');
  }
  return { templateDir: positional[0], valuesFile: positional[1], outDir: positional[2], copyOnly };
}

// Backstage lists entries with globby('**/*', {dot: true, markDirectories: true}): directories end
// in '/', and a directory comes before its contents. A sorted pre-order walk gives the same guarantee.
function listEntries(root, rel = '') {
  const entries = [];
  for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
    const child = rel ? `${rel}/${name}` : name;
    const stats = fs.lstatSync(path.join(root, child));
    if (stats.isDirectory()) {
      entries.push(`${child}/`);
      entries.push(...listEntries(root, child));
    } else {
      entries.push(child);
    }
  }
  return entries;
}

// copyWithoutTemplating patterns here are plain relative paths (all aistarter needs), not full globs.
function matchesCopyOnly(location, patterns) {
  return patterns.some(p => location === p || location === `${p}/` || location.startsWith(`${p}/`));
}

// The same test as Backstage's containsSkippedContent: an empty name leaves '' or '//' in the path.
function skipped(outputPath) {
  return outputPath === '' || outputPath.startsWith('/') || outputPath.includes('//');
}

function main() {
  const { templateDir, valuesFile, outDir, copyOnly } = parseArgs(process.argv.slice(2));
  const values = JSON.parse(fs.readFileSync(valuesFile, 'utf-8'));
  const env = nunjucks.configure({ autoescape: false, tags: { variableStart: '{{', variableEnd: '}}' } });
  env.addFilter('jsonify', env.getFilter('dump'));
  nunjucks.installJinjaCompat();
  const context = { cookiecutter: values };
  const render = str => env.renderString(str, JSON.parse(JSON.stringify(context)));

  // Keep going after a failure so one run lists every construct nunjucks cannot render.
  const errors = [];
  for (const location of listEntries(templateDir)) {
    try {
      renderEntry(location);
    } catch (error) {
      errors.push(error.message.replace(/\s+/g, ' '));
    }
  }
  if (errors.length > 0) {
    throw new Error(`${errors.length} path(s) failed:\n${errors.join('\n')}`);
  }

  function renderEntry(location) {
    // copyWithoutTemplating still renders paths; only contents are copied verbatim.
    const renderContents = !matchesCopyOnly(location, copyOnly);
    let localOutputPath;
    try {
      localOutputPath = render(location);
    } catch (error) {
      throw new Error(`path ${location}: ${error.message}`);
    }
    if (skipped(localOutputPath)) return;
    const outputPath = path.join(outDir, localOutputPath);
    // Without `replace: true` Backstage leaves existing paths alone; that is also what makes a file whose
    // name renders empty ('dir/' after rendering) a no-op, since its folder already exists.
    if (fs.existsSync(outputPath)) return;
    const inputPath = path.join(templateDir, location);
    if (location.endsWith('/')) {
      fs.mkdirSync(outputPath, { recursive: true });
      return;
    }
    fs.mkdirSync(path.dirname(outputPath), { recursive: true });
    const stats = fs.statSync(inputPath);
    if (fs.lstatSync(inputPath).isSymbolicLink() || isBinaryFileSync(inputPath)) {
      fs.copyFileSync(inputPath, outputPath);
      return;
    }
    const contents = fs.readFileSync(inputPath, 'utf-8');
    let rendered = contents;
    if (renderContents) {
      try {
        rendered = render(contents);
      } catch (error) {
        throw new Error(`file ${location}: ${error.message}`);
      }
    }
    fs.writeFileSync(outputPath, rendered, { mode: stats.mode });
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`preview.js: ${error.message}\n`);
  process.exit(1);
}
