"""``python -m symshape``: the same as the ``symshape`` command."""

from .cli import run

if __name__ == "__main__":
    run()
