"""Review: what happened in the runs of a store, side by side, and running one again.

- ``report``: the comparison table of a store's runs (columns, sorting, formats);
- ``filters``: ``compare --where`` expressions over params, final metrics and status;
- ``diff``: ``compare --diff`` of two runs' params and final metrics;
- ``sweep_report``: a sweep's table and pictures as files (what ``compare --plot`` writes);
- ``rerun_plan``: rebuilding a logged job from its run (config, data fingerprint, fused plan);
- ``rerun``: training that job again and recording it as a new run;
- ``rerun_compare``: comparing the rerun with the original, epoch by epoch and hash by hash.

May import: every layer below it (``runs``, ``tracking``, ``pictures``, ``fusion``,
``config``, ``data``, ``core``, ``errors``), pandas and NumPy; not ``cli``, not Hydra.
"""
