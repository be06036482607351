"""One module per study: what its notebook section runs and the tables and figures it makes.

- ``studies.a``: LSTM-CNN on ResNet50 features (notebook 03).
- ``studies.b``: lightweight CNN vs DenseNet121 / MobileNet / Inception V1 on RSNA CT (04).
- ``studies.c``: the sequential CNN's five optimiser trials with MSE (03).
- ``studies.d``: the 3-D CNN's six scenarios on MosMed (05); a package, one module per job
  (data, training, scoring, tables, figures, xai).
- ``studies.e``: the CNN with Grad-CAM, Eigen-CAM and Integrated Gradients (03).
- ``studies.mri_common``: what A, C and E share (image splits, duplicate-free tables, figures).

A study's entry points take its typed profile row (``settings``: :class:`~medrepro.core.profiles.
ASettings` ... ``ESettings``), its data and the notebook run's training folder (``runs``), seed as
a keyword, and return result dataclasses; its ``table*``/``fig*`` functions turn a result into the
frames and figures that the notebook saves with :mod:`medrepro.reporting.report`; its
``plan(settings, ctx)`` states what it will write (:mod:`medrepro.core.planning`, for
:mod:`medrepro.run.plan`). Model builders live in :mod:`medrepro.models`, training mechanics in
:mod:`medrepro.training.train`, figures in :mod:`medrepro.reporting.plots`. Submodules are imported on demand
(``from medrepro.studies import b``), so importing this package imports nothing heavy.
"""
