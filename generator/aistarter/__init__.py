"""aistarter: turn an AI product's needs into a backend repository and its Kubernetes infrastructure."""

__version__ = "0.1.0"
