"""d2st: reproduce and extend D2ST-Adapter (ICCV 2025) for few-shot action recognition.

The library imports without Snakemake; every workflow rule calls it through the ``d2st``
command line (``d2st.cli``) or a thin script.
"""

__version__ = "0.1.0"
