"""Split text or markdown into overlapping chunks that respect headings and paragraphs.

Chunks are packed from paragraphs up to `size` characters; a paragraph longer than that is cut at sentence
or word boundaries. Each markdown chunk is prefixed with its heading path so a retrieved chunk still says
where it came from.
"""

import re

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _sections(text: str, markdown: bool) -> list[tuple[str, str]]:
    """(heading path, body) pairs; plain text is a single section without a heading."""
    if not markdown:
        return [("", text)]
    sections: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def flush() -> None:
        if any(line.strip() for line in body):
            sections.append((" > ".join(title for _, title in path), "\n".join(body)))
        body.clear()

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path[:] = [item for item in path if item[0] < level] + [(level, match.group(2))]
        else:
            body.append(line)
    flush()
    return sections


def _split_long(paragraph: str, size: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for unit in _SENTENCE_END.split(paragraph):
        while len(unit) > size:  # a "sentence" longer than a chunk: cut at the last space before the limit
            cut = unit.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            head, unit = unit[:cut], unit[cut:].lstrip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if current and len(current) + 1 + len(unit) > size:
            pieces.append(current)
            current = unit
        else:
            current = f"{current} {unit}" if current else unit
    if current:
        pieces.append(current)
    return pieces


def chunk_text(text: str, *, size: int = 1200, overlap: int = 150, markdown: bool = False) -> list[str]:
    if size <= 0:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be between 0 and size-1 ({size - 1}), got {overlap}")
    chunks: list[str] = []
    for heading, body in _sections(text.replace("\r\n", "\n"), markdown):
        prefix = f"{heading}\n\n" if heading else ""
        room = max(size - len(prefix), size // 2)
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
        units = [piece for p in paragraphs for piece in (_split_long(p, room) if len(p) > room else [p])]
        current = ""
        for unit in units:
            if current and len(current) + 2 + len(unit) > room:
                chunks.append(prefix + current)
                # Carry the tail of the previous chunk so a fact split across the boundary stays findable.
                tail = current[-overlap:] if overlap else ""
                if tail and " " in tail:
                    tail = tail[tail.index(" ") + 1 :]
                current = f"{tail}\n\n{unit}" if tail and len(tail) + 2 + len(unit) <= room else unit
            else:
                current = f"{current}\n\n{unit}" if current else unit
        if current:
            chunks.append(prefix + current)
    return chunks
