import sys

from agent._cli import main

sys.exit(main())
