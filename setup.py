"""Install the ``paddleseg`` package (``pip install -e .``).

Users with an NVIDIA GPU install ``paddlepaddle-gpu`` instead of the CPU wheel
(``pip install paddlepaddle-gpu`` first; pip then keeps it, since both
provide the ``paddle`` module and this package only needs one of them).
"""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements():
    with open(os.path.join(HERE, 'requirements.txt')) as f:
        reqs = [line.strip() for line in f if line.strip()
                and not line.startswith('#')]
    try:  # A GPU build already installed satisfies the paddle requirement.
        from importlib.metadata import distribution
        distribution('paddlepaddle-gpu')
        reqs = [r for r in reqs if not r.startswith('paddlepaddle')]
    except Exception:
        pass
    return reqs


setup(
    name='paddleseg-ccnet',
    version='0.1.0',
    description='PaddleSeg-compatible semantic segmentation with a native '
    'criss-cross attention operator (CCNet).',
    packages=find_packages(include=['paddleseg', 'paddleseg.*']),
    package_data={'paddleseg.ops': ['csrc/*', 'csrc/**/*', 'conv_csrc/*']},
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=requirements(),
    extras_require={
        'test': ['pytest>=7.0', 'pytest-timeout>=2.0'],
        'onnx': ['paddle2onnx', 'onnxruntime'],
        # infer.py --backend openvino (the ONNX file in OpenVINO's runtime).
        'openvino': ['paddle2onnx', 'openvino'],
        'safetensors': ['safetensors>=0.4'],
        # The official evaluator of --dump_for_submission's label-id PNGs.
        'cityscapes': ['cityscapesscripts'],
    },
    license='Apache-2.0',
)
