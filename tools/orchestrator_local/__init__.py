"""Local mode: the whole stack on one machine, no Docker, no AWS account.

* :mod:`.template` reads ``template.yaml`` (the single source of truth).
* :mod:`.resources` creates the template's table, bucket, secrets, bus and
  state machine in moto.
* :mod:`.runtime` runs Lambda handlers in-process and routes moto's Lambda
  invocations (Step Functions ``lambda:invoke`` tasks) to them.
* :mod:`.gateway` serves the template's API events over HTTP as API Gateway
  would call the handlers (authorizer, gateway responses included).
* :mod:`.server` ties them together behind ``make serve``.
"""
