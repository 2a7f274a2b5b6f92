"""Stand-in for ai.backend.common.docker: `ImageRef` is only a type annotation in kernel.py."""


class ImageRef:
    """Placeholder: the code-runner client never touches image references."""
