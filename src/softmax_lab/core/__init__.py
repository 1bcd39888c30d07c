"""Core: the lecture — softmax regression, the two-layer net, their loss, SGD and the one loop.

- ``model``: the hypothesis classes, ``SoftmaxRegression`` (h = Xθ, θ from zeros) and
  ``TwoLayerNet`` (ReLU(X W1) W2), with preallocated float32 buffers;
- ``loss``: softmax cross-entropy, its gradient w.r.t. the logits (in place), the 0/1 error,
  the confusion matrix;
- ``optim``: one epoch of minibatch SGD for any hypothesis, one step size or one per stacked
  block;
- ``training``: the one training loop (``train_stack``; ``train`` is its one-job case), with
  an optional judge that stops jobs early after any epoch (``EpochEnd``, ``stopped_at``), the
  stacked-θ conventions (``StackPlan``), evaluation, ``EpochMetrics``, ``TrainResult``,
  ``DivergenceError``, and ``detect_explosion`` (``ExplosionError``: a job that ended with
  finite losses no better than guessing);
- ``constraints``: parameter constraints as values (``Interval``, ``OneOf``, …) and
  ``check_params``, shared by these functions and the config's rule table;
- ``textbook``: the lecture's pseudo-code as usually typed, the reference that tests and
  benchmarks compare with.

May import: ``softmax_lab.errors``, NumPy and the standard library only (the NumPy-only contract
in ``pyproject.toml``); everything else imports it.
"""
