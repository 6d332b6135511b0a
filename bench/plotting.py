"""One way to write a report figure: laid out, saved as PNG (directories made), closed (memory freed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path, dpi: int = 100, tight: bool = True) -> bool:
    """Save ``fig`` to ``path`` and close it; returns True so plot functions can end with it."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True
