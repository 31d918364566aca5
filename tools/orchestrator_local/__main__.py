from orchestrator_local.server import main

raise SystemExit(main())
