"""``python -m cpet_nb`` runs the ``cpet-nb`` command line."""

import sys

from .cli import main

sys.exit(main())
