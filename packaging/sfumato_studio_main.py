"""The standalone bundle's entry point: Sfumato Studio, as the `sfumato-studio` gui-script starts it."""

import sys

from sfumato.desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
