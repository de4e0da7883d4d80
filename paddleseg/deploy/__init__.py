"""Deployment: from a trained model to the programs that run elsewhere.

- :mod:`.export`: the static program (``model.json``, ``model.pdiparams``)
  and PaddleSeg's ``deploy.yaml``, in forms Paddle Inference runs with oneDNN;
- :mod:`.onnx`: that program converted to ONNX (paddle2onnx in a child
  process) and checked against Paddle with onnxruntime;
- :mod:`.predictor`: ``deploy.yaml`` read back and a Paddle Inference
  predictor made for it (CPU with or without oneDNN, GPU, TensorRT);
- :mod:`.segmenter`: image files through that predictor, written as
  ``predict.py`` writes them.

Training and evaluation (:mod:`paddleseg.core`) never import this package.
"""
