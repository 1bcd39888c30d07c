"""Pictures of runs and sweeps as PNG files, drawn with Pillow and NumPy from plain arrays.

Its modules:

- ``raster``: the Pillow canvas, text (cached, fitted to its room, titles), colour maps,
  palette PNG output;
- ``axes``: data limits, ticks and their labels, frames, colourbars, lines and markers, the
  epoch panel;
- ``curves``: a run's learning curves (``plot_curves``);
- ``templates``: a weight matrix's columns as image templates (``plot_templates``,
  ``tile_images``);
- ``confusion``: a confusion matrix as an annotated heatmap (``plot_confusion``);
- ``run_pictures``: a run's three pictures into one directory, in one call
  (``draw_run_pictures``);
- ``sweep_heatmap``: a sweep's metric over its swept parameters, heatmap panels or bars
  (``plot_sweep_heatmap``, ``choose_axes``);
- ``sweep_curves``: every run of a sweep's curve overlaid (``plot_overlaid_curves``);
- ``predictions``: classified images with their predicted (and true) labels
  (``draw_predictions``).
- ``study``: an Optuna study's optimisation history, parallel coordinates and parameter
  importances, from plain ``TrialPoint`` rows (``draw_study_pictures``).

Each picture's pixel size depends only on its input's shape, and the same input gives the same
bytes.

May import: ``softmax_lab.core``, ``softmax_lab.errors``, ``softmax_lab.data.files`` (PNGs are
written atomically), the standard library, NumPy, Pillow
(and pandas, the sweep heatmap's input); never MLflow, Hydra, matplotlib, ``tracking`` or
``runs``.
"""
