/// The API's description, served at `/v1/openapi.json`. Written by hand and checked by
/// `RouterTests`: every route the server registers is described here, and every path here
/// is a route.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Tessera market",
    "version": "1",
    "description": "A Tessera expert market over HTTP. There are no accounts: every write is a signed ledger action (Ed25519 over the canonical JSON {\"kind\":K,\"payload\":P}), a bundle signed by its contributor, or a shard signed by the operator. Errors are {\"error\": {\"code\", \"message\"}} with a 4xx status naming the rule."
  },
  "paths": {
    "/healthz": {
      "get": {
        "operationId": "health",
        "summary": "Liveness: the ledger is readable.",
        "responses": {
          "200": { "description": "Healthy.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Health" } } } }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics: requests by route and status, latency histograms, events appended, bundles stored, bytes served.",
        "responses": { "200": { "description": "Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } } }
      }
    },
    "/v1/openapi.json": {
      "get": {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } }
      }
    },
    "/v1/market": {
      "get": {
        "operationId": "market",
        "summary": "Where the market stands: events, head hash, policy hash, domains, rounds, library.",
        "responses": { "200": { "description": "Summary.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/MarketSummary" } } } } }
      }
    },
    "/v1/policy": {
      "get": {
        "operationId": "policy",
        "summary": "market.toml, byte for byte (its SHA-256 is in the genesis event).",
        "responses": { "200": { "description": "TOML.", "content": { "application/toml": { "schema": { "type": "string" } } } } }
      }
    },
    "/v1/domains/{name}": {
      "get": {
        "operationId": "domain",
        "summary": "A domain's file.",
        "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } } ],
        "responses": {
          "200": { "description": "TOML.", "content": { "application/toml": { "schema": { "type": "string" } } } },
          "404": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/library/manifest": {
      "get": {
        "operationId": "libraryManifest",
        "summary": "The expert library's manifest.json, byte for byte.",
        "responses": { "200": { "description": "Manifest.", "content": { "application/json": { "schema": { "type": "object" } } } } }
      }
    },
    "/v1/library/config": {
      "get": {
        "operationId": "libraryConfig",
        "summary": "The model's config.json, byte for byte.",
        "responses": { "200": { "description": "Config.", "content": { "application/json": { "schema": { "type": "object" } } } } }
      }
    },
    "/v1/shards/{hash}": {
      "get": {
        "operationId": "shard",
        "summary": "A shard by its SHA-256: immutable (strong ETag, a year's cache lifetime), Range requests, streamed from disk.",
        "parameters": [
          { "$ref": "#/components/parameters/Hash" },
          { "name": "Range", "in": "header", "required": false, "schema": { "type": "string" } }
        ],
        "responses": {
          "200": { "description": "The shard.", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
          "206": { "description": "Part of the shard.", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
          "304": { "description": "Not modified (If-None-Match)." },
          "400": { "$ref": "#/components/responses/Error" },
          "404": { "$ref": "#/components/responses/Error" },
          "416": { "$ref": "#/components/responses/Error" }
        }
      },
      "put": {
        "operationId": "uploadShard",
        "summary": "The operator stores a new expert version's shard before the new_version action that names it.",
        "parameters": [
          { "$ref": "#/components/parameters/Hash" },
          { "name": "Tessera-Key", "in": "header", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } },
          { "name": "Tessera-Signature", "in": "header", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{128}$" },
            "description": "Ed25519 over the bytes tessera-upload-shard/1|HASH." }
        ],
        "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
        "responses": {
          "201": { "description": "Stored.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Stored" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "401": { "$ref": "#/components/responses/Error" },
          "403": { "$ref": "#/components/responses/Error" },
          "413": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/actions": {
      "post": {
        "operationId": "postAction",
        "summary": "Record a signed ledger action. Re-posting the same action answers with the event that recorded it (recorded: false) and writes nothing.",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ActionEnvelope" } } } },
        "responses": {
          "200": { "description": "Recorded (or already recorded).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ActionReceipt" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "401": { "$ref": "#/components/responses/Error" },
          "403": { "$ref": "#/components/responses/Error" },
          "409": { "$ref": "#/components/responses/Error" },
          "413": { "$ref": "#/components/responses/Error" },
          "429": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/events": {
      "get": {
        "operationId": "events",
        "summary": "Events after a sequence number; with wait, a long poll that answers as soon as one arrives.",
        "parameters": [
          { "name": "since", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0, "default": 0 } },
          { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000 } },
          { "name": "wait", "in": "query", "required": false, "schema": { "type": "number", "minimum": 0, "maximum": 60, "default": 0 } }
        ],
        "responses": {
          "200": { "description": "Events in order.", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } } } } },
          "400": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/shares/{owner}": {
      "get": {
        "operationId": "shares",
        "summary": "An owner's holdings, payouts and fees.",
        "parameters": [ { "name": "owner", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } } ],
        "responses": {
          "200": { "description": "Holdings.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Shares" } } } },
          "400": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/experts/{expert}": {
      "get": {
        "operationId": "expert",
        "summary": "An expert's holders, versions and revenue.",
        "parameters": [ { "name": "expert", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9]+:[0-9]+$" } } ],
        "responses": {
          "200": { "description": "The expert.", "content": { "application/json": { "schema": { "type": "object" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "404": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/rounds": {
      "get": {
        "operationId": "rounds",
        "summary": "Every round's id.",
        "responses": { "200": { "description": "Round ids.", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "string" } } } } } }
      }
    },
    "/v1/rounds/{round}": {
      "get": {
        "operationId": "round",
        "summary": "A round: experts, claims, submissions (with what each one's state means), commitments.",
        "parameters": [ { "name": "round", "in": "path", "required": true, "schema": { "type": "string" } } ],
        "responses": {
          "200": { "description": "The round.", "content": { "application/json": { "schema": { "type": "object" } } } },
          "404": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/payouts": {
      "get": {
        "operationId": "payouts",
        "summary": "Payouts of every revenue event, or of one.",
        "parameters": [ { "name": "event", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1 } } ],
        "responses": {
          "200": { "description": "Payouts.", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } },
          "400": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/verify": {
      "get": {
        "operationId": "verify",
        "summary": "Replay the chain and recompute every derived figure.",
        "responses": { "200": { "description": "Report.", "content": { "application/json": { "schema": { "type": "object" } } } } }
      }
    },
    "/v1/bundles": {
      "put": {
        "operationId": "uploadBundle",
        "summary": "Upload a submission bundle (tessera-bundle-archive/1) after its round's submission window closed. Its hash must have been submitted in the window; the bundle is verified (signature, hashes, shapes, finite values) before it is stored.",
        "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
        "responses": {
          "201": { "description": "Stored (or already stored).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Submission" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "403": { "$ref": "#/components/responses/Error" },
          "413": { "$ref": "#/components/responses/Error" },
          "425": { "$ref": "#/components/responses/Error" },
          "429": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/bundles/{submission}": {
      "get": {
        "operationId": "bundle",
        "summary": "A submitted bundle, as an archive.",
        "parameters": [ { "name": "submission", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } } ],
        "responses": {
          "200": { "description": "The archive.", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "404": { "$ref": "#/components/responses/Error" }
        }
      }
    }
  },
  "components": {
    "parameters": {
      "Hash": { "name": "hash", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } }
    },
    "responses": {
      "Error": { "description": "Refused, with the reason.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
    },
    "schemas": {
      "Error": {
        "type": "object", "required": ["error"],
        "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } }
      },
      "Health": { "type": "object", "required": ["status", "events"], "properties": { "status": { "type": "string" }, "events": { "type": "integer" } } },
      "MarketSummary": {
        "type": "object",
        "required": ["events", "head_hash", "policy_sha256", "domains", "rounds", "trunk", "model_type", "experts"],
        "properties": {
          "events": { "type": "integer" }, "head_hash": { "type": "string" }, "policy_sha256": { "type": "string" },
          "domains": { "type": "array", "items": { "type": "string" } }, "rounds": { "type": "array", "items": { "type": "string" } },
          "trunk": { "type": "string" }, "model_type": { "type": "string" }, "experts": { "type": "integer" }
        }
      },
      "ActionEnvelope": {
        "type": "object", "required": ["kind", "payload", "actor", "signature"], "additionalProperties": false,
        "properties": {
          "kind": { "type": "string", "enum": ["genesis", "register", "open_domain", "open_round", "close_round", "claim", "submit", "verdict", "new_version", "revenue", "commit", "reveal"] },
          "payload": { "type": "object" },
          "actor": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
          "signature": { "type": "string", "pattern": "^[0-9a-f]{128}$" }
        }
      },
      "ActionReceipt": {
        "type": "object", "required": ["seq", "recorded"],
        "properties": { "seq": { "type": "integer" }, "recorded": { "type": "boolean" } }
      },
      "Event": {
        "type": "object",
        "required": ["seq", "kind", "payload", "actor", "signature", "prev_hash", "hash", "idempotency_key", "at"],
        "properties": {
          "seq": { "type": "integer" }, "kind": { "type": "string" }, "payload": { "type": "string" }, "actor": { "type": "string" },
          "signature": { "type": "string" }, "prev_hash": { "type": "string" }, "hash": { "type": "string" },
          "idempotency_key": { "type": "string" }, "at": { "type": "integer" }
        }
      },
      "Shares": {
        "type": "object", "required": ["owner", "holdings", "fees_minor_units"],
        "properties": { "owner": { "type": "string" }, "holdings": { "type": "array", "items": { "type": "object" } }, "fees_minor_units": { "type": "integer" } }
      },
      "Stored": { "type": "object", "required": ["hash"], "properties": { "hash": { "type": "string" } } },
      "Submission": { "type": "object", "required": ["submission"], "properties": { "submission": { "type": "string" } } }
    }
  }
}
"""#
}
