"""``api/openapi.yaml``, generated: ``python -m openapi_gen`` (``make openapi``).

The document is merged from three sources, none of which it repeats by hand:

- ``template.yaml``: the routes (method, path, function, authorizer);
- ``openapi_gen.operations``: what each operation says (name, prose, credential,
  request and response models, parameters, Problem responses), and the pydantic models
  themselves for every request and response schema (``model_json_schema``, converted to
  OpenAPI 3.0: ``nullable`` instead of ``null`` types, no ``const``, ``$ref`` into
  ``#/components/schemas``);
- ``api/openapi.base.yaml``: the prose and components no model or route holds.

Powertools' own OpenAPI support (``get_openapi_schema``, ``OpenAPIMerge``) was weighed: it
documents one resolver's routes from their annotations, writes OpenAPI 3.1, finds handlers
only where they construct a resolver class themselves (ours call ``rest_app()``) and knows
nothing of API Gateway's path spellings (``{execution_id}`` carrying ``:cancel``) or our
Problem responses; the small merger here is simpler than bending it.
"""

from openapi_gen.document import OUTPUT, build_document, render

__all__ = ["OUTPUT", "build_document", "render"]
