import sys

from bench._driver import main

sys.exit(main())
