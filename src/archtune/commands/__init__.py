"""The CLI's verbs, one module per feature (search, studies, report, serve, dashboard, plan);
:mod:`archtune.cli` holds the core verbs and adds these. Each verb parses its options and calls
the public Python API; heavy modules are imported inside the verb, so ``archtune --help``
stays fast.
"""
