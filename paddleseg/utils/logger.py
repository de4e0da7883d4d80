"""The project's logger: one ``logging`` logger named ``paddleseg``.

Only rank 0 of a distributed run prints INFO; other ranks print warnings and
errors, so a 2-process launch does not print every line twice.
"""

import logging
import os
import sys

_LOGGER_NAME = 'paddleseg'


def _rank():
    return int(os.environ.get('PADDLE_TRAINER_ID', os.environ.get('RANK', 0)))


def get_logger():
    logger = logging.getLogger(_LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(
            '%(asctime)s [%(levelname)s] %(message)s', '%Y-%m-%d %H:%M:%S'))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if _rank() == 0 else logging.WARNING)
        logger.propagate = False
    return logger


logger = get_logger()


def info(msg, *args):
    logger.info(msg, *args)


def warning(msg, *args):
    logger.warning(msg, *args)


def error(msg, *args):
    logger.error(msg, *args)


def debug(msg, *args):
    logger.debug(msg, *args)
