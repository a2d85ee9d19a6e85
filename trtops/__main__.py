from trtops.cli import main

raise SystemExit(main())
