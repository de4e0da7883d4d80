"""``python -m paddleseg.ops``: build the native operators ahead of time and
print the library path (see paddleseg/ops/native.py for the options)."""

from paddleseg.ops.native import main

if __name__ == '__main__':
    main()
