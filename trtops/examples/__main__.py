from trtops.examples.cli import main

raise SystemExit(main())
