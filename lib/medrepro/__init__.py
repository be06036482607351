"""medrepro: a reproduction kit for five medical-imaging deep-learning studies.

Importing the package is cheap: no TensorFlow, no I/O. Import the submodules you need
(`medrepro.reporting.report`, `medrepro.data.phantoms`, ...).
"""

__version__ = "0.1.0"
