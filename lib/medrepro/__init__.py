"""medrepro: a reproduction kit for five medical-imaging deep-learning studies.

Importing the package is cheap: no TensorFlow, no I/O. Import the submodules you need
(`medrepro.report`, `medrepro.phantoms`, ...).
"""

__version__ = "0.1.0"
