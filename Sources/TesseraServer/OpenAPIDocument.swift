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
          { "name": "since", "in": "query", "required": false, "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": 9223372036854775807, "default": 0 } },
          { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000 } },
          { "name": "wait", "in": "query", "required": false, "description": "Seconds to wait for a new event when there is none (a long poll).", "schema": { "type": "number", "minimum": 0, "maximum": 60, "default": 0 } }
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
        "parameters": [ { "name": "expert", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9]{1,9}:[0-9]{1,9}$" } } ],
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
        "parameters": [ { "name": "event", "in": "query", "required": false, "schema": { "type": "integer", "format": "int64", "minimum": 1, "maximum": 9223372036854775807 } } ],
        "responses": {
          "200": { "description": "Payouts.", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } },
          "400": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/": {
      "get": {
        "operationId": "dashboardMarket",
        "summary": "Dashboard: domains, rounds, submissions with each validator's figures and verdict, consensus gains and revenue per period.",
        "responses": { "200": { "description": "An HTML page (server-rendered, SVG charts, no script).", "content": { "text/html": { "schema": { "type": "string" } } } } }
      }
    },
    "/experts/{expert}": {
      "get": {
        "operationId": "dashboardExpert",
        "summary": "Dashboard: one expert (LAYER:EXPERT): version lineage, holders, shares, metered usage per period.",
        "parameters": [ { "name": "expert", "in": "path", "required": true, "schema": { "type": "string" } } ],
        "responses": { "200": { "description": "An HTML page (server-rendered, SVG charts, no script).", "content": { "text/html": { "schema": { "type": "string" } } } } }
      }
    },
    "/owners/{key}": {
      "get": {
        "operationId": "dashboardOwner",
        "summary": "Dashboard: one owner by public key: holdings and payouts over time.",
        "parameters": [ { "name": "key", "in": "path", "required": true, "schema": { "type": "string" } } ],
        "responses": { "200": { "description": "An HTML page (server-rendered, SVG charts, no script).", "content": { "text/html": { "schema": { "type": "string" } } } } }
      }
    },
    "/validators/{key}": {
      "get": {
        "operationId": "dashboardValidator",
        "summary": "Dashboard: one validator by public key: verdicts and agreement with consensus.",
        "parameters": [ { "name": "key", "in": "path", "required": true, "schema": { "type": "string" } } ],
        "responses": { "200": { "description": "An HTML page (server-rendered, SVG charts, no script).", "content": { "text/html": { "schema": { "type": "string" } } } } }
      }
    },
    "/v1/meter/sample": {
      "get": {
        "operationId": "meterSample",
        "summary": "A seeded sample of metered completions (tokens, sampling, usage, price, receipt) for an audit (tessera audit --market URL). Only the market's registered participants and its operator: headers Tessera-Key and Tessera-Signature, Ed25519 over tessera-meter-sample/1|N|SEED. The sample is the one Audit.draw makes for that seed.",
        "parameters": [ { "name": "n", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                        { "name": "seed", "in": "query", "required": true, "schema": { "type": "integer", "minimum": 0 } } ],
        "responses": {
          "200": { "description": "Meter records.", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "401": { "$ref": "#/components/responses/Error" },
          "403": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/receipts/{hash}": {
      "get": {
        "operationId": "receipt",
        "summary": "Where a routing receipt stands: its request's period, domain, price and metered usage, and once the period is settled the revenue event and the Merkle path from the receipt to the event's receipts_root (the client checks it against the ledger's event).",
        "parameters": [ { "name": "hash", "in": "path", "required": true, "schema": { "$ref": "#/components/schemas/Hash" } } ],
        "responses": {
          "200": { "description": "The receipt's status.", "content": { "application/json": { "schema": { "type": "object" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "404": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/api-keys/{hash}": {
      "put": {
        "operationId": "registerAPIKey",
        "summary": "The operator registers an API key for /v1/completions by the SHA-256 of its secret (the secret never travels); the key is tied to the domain and the policy's price per 1000 tokens. Headers Tessera-Key and Tessera-Signature: Ed25519 over tessera-api-key/1|DOMAIN|HASH.",
        "parameters": [ { "name": "hash", "in": "path", "required": true, "schema": { "$ref": "#/components/schemas/Hash" } },
                        { "name": "domain", "in": "query", "required": true, "schema": { "type": "string" } } ],
        "responses": {
          "201": { "description": "The stored record.", "content": { "application/json": { "schema": { "type": "object" } } } },
          "400": { "$ref": "#/components/responses/Error" },
          "401": { "$ref": "#/components/responses/Error" },
          "403": { "$ref": "#/components/responses/Error" }
        }
      }
    },
    "/v1/completions": {
      "post": {
        "operationId": "completions",
        "summary": "Complete a prompt on the market's current expert versions, in the shape of OpenAI's completions API (prompt, max_tokens, temperature, top_p, seed, stop, stream as server-sent events). Authorization: Bearer with an API key from `tessera market api-key`. Every request is metered (price, gate mass per expert version) before its response ends; the response's `tessera` object carries the signed routing receipt, the price and the usage. Errors are OpenAI's error object. 404 when the server does not serve a model.",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["prompt"] } } } },
        "responses": {
          "200": { "description": "A completion, or with stream a text/event-stream of chunks ending in data: [DONE].", "content": { "application/json": { "schema": { "type": "object" } }, "text/event-stream": { "schema": { "type": "string" } } } },
          "400": { "description": "OpenAI error object.", "content": { "application/json": { "schema": { "type": "object" } } } },
          "401": { "description": "OpenAI error object: no or unknown API key.", "content": { "application/json": { "schema": { "type": "object" } } } }
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
        "required": ["market_id", "events", "head_hash", "policy_sha256", "domains", "rounds", "trunk", "model_type", "experts"],
        "properties": {
          "market_id": { "description": "The hash of the genesis event: the market bundles are signed for.", "type": "string" },
          "events": { "type": "integer" }, "head_hash": { "type": "string" }, "policy_sha256": { "type": "string" },
          "domains": { "type": "array", "items": { "type": "string" } }, "rounds": { "type": "array", "items": { "type": "string" } },
          "trunk": { "type": "string" }, "model_type": { "type": "string" }, "experts": { "type": "integer" }
        }
      },
      "ActionEnvelope": {"description": "A signed ledger action: the signature (Ed25519 by actor) covers the canonical JSON (RFC 8785) of {\"kind\":K,\"payload\":P}.", "oneOf": [{"$ref": "#/components/schemas/GenesisAction"}, {"$ref": "#/components/schemas/RegisterAction"}, {"$ref": "#/components/schemas/OpenDomainAction"}, {"$ref": "#/components/schemas/OpenRoundAction"}, {"$ref": "#/components/schemas/CloseRoundAction"}, {"$ref": "#/components/schemas/ClaimAction"}, {"$ref": "#/components/schemas/SubmitAction"}, {"$ref": "#/components/schemas/VerdictAction"}, {"$ref": "#/components/schemas/NewVersionAction"}, {"$ref": "#/components/schemas/RevenueAction"}, {"$ref": "#/components/schemas/CommitAction"}, {"$ref": "#/components/schemas/RevealAction"}], "discriminator": {"propertyName": "kind", "mapping": {"genesis": "#/components/schemas/GenesisAction", "register": "#/components/schemas/RegisterAction", "open_domain": "#/components/schemas/OpenDomainAction", "open_round": "#/components/schemas/OpenRoundAction", "close_round": "#/components/schemas/CloseRoundAction", "claim": "#/components/schemas/ClaimAction", "submit": "#/components/schemas/SubmitAction", "verdict": "#/components/schemas/VerdictAction", "new_version": "#/components/schemas/NewVersionAction", "revenue": "#/components/schemas/RevenueAction", "commit": "#/components/schemas/CommitAction", "reveal": "#/components/schemas/RevealAction"}}},
      "Time": {"description": "Unix seconds.", "type": "integer", "format": "int64", "minimum": -9223372036854775808, "maximum": 9223372036854775807},
      "Int64": {"type": "integer", "format": "int64", "minimum": -9223372036854775808, "maximum": 9223372036854775807},
      "Key": {"description": "An Ed25519 public key, hex.", "type": "string", "pattern": "^[0-9a-f]{64}$"},
      "Hash": {"description": "A SHA-256, hex.", "type": "string", "pattern": "^[0-9a-f]{64}$"},
      "ExpertRef": {"type": "object", "additionalProperties": false, "required": ["layer", "expert"], "properties": {"layer": {"$ref": "#/components/schemas/Int64"}, "expert": {"$ref": "#/components/schemas/Int64"}, "version": {"$ref": "#/components/schemas/Hash"}}},
      "Usage": {"type": "object", "additionalProperties": false, "required": ["layer", "expert", "version", "usage"], "properties": {"layer": {"$ref": "#/components/schemas/Int64"}, "expert": {"$ref": "#/components/schemas/Int64"}, "version": {"$ref": "#/components/schemas/Hash"}, "usage": {"$ref": "#/components/schemas/Int64"}}},
      "GenesisPayload": {"type": "object", "additionalProperties": false, "required": ["at", "publisher", "experts", "policy_sha256"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "publisher": {"$ref": "#/components/schemas/Key"}, "experts": {"type": "array", "items": {"$ref": "#/components/schemas/ExpertRef"}}, "policy_sha256": {"$ref": "#/components/schemas/Hash"}}},
      "GenesisAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "genesis"}, "payload": {"$ref": "#/components/schemas/GenesisPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "RegisterPayload": {"type": "object", "additionalProperties": false, "required": ["at", "key", "roles", "stake"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "key": {"$ref": "#/components/schemas/Key"}, "roles": {"type": "array", "items": {"type": "string", "enum": ["contributor", "validator", "owner"]}}, "stake": {"$ref": "#/components/schemas/Int64"}}},
      "RegisterAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "register"}, "payload": {"$ref": "#/components/schemas/RegisterPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "OpenDomainPayload": {"type": "object", "additionalProperties": false, "required": ["at", "name"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "name": {"type": "string"}}},
      "OpenDomainAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "open_domain"}, "payload": {"$ref": "#/components/schemas/OpenDomainPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "OpenRoundPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round", "domain", "experts", "closes_at"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}, "domain": {"type": "string"}, "experts": {"type": "array", "items": {"$ref": "#/components/schemas/ExpertRef"}}, "closes_at": {"$ref": "#/components/schemas/Time"}}},
      "OpenRoundAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "open_round"}, "payload": {"$ref": "#/components/schemas/OpenRoundPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "CloseRoundPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}}},
      "CloseRoundAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "close_round"}, "payload": {"$ref": "#/components/schemas/CloseRoundPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "ClaimPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round", "experts", "expires_at"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}, "experts": {"type": "array", "items": {"$ref": "#/components/schemas/ExpertRef"}}, "expires_at": {"$ref": "#/components/schemas/Time"}}},
      "ClaimAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "claim"}, "payload": {"$ref": "#/components/schemas/ClaimPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "SubmitPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round", "bundle", "bundle_signature", "experts"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}, "bundle": {"$ref": "#/components/schemas/Hash"}, "bundle_signature": {"type": "string"}, "experts": {"type": "array", "items": {"$ref": "#/components/schemas/ExpertRef"}}}},
      "SubmitAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "submit"}, "payload": {"$ref": "#/components/schemas/SubmitPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "VerdictPayload": {"type": "object", "additionalProperties": false, "required": ["at", "submission", "gain_lcb_micronats", "regression_ucb_micronats", "accept", "reason"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "submission": {"$ref": "#/components/schemas/Hash"}, "gain_lcb_micronats": {"$ref": "#/components/schemas/Int64"}, "regression_ucb_micronats": {"$ref": "#/components/schemas/Int64"}, "accept": {"type": "boolean"}, "reason": {"type": "string"}}},
      "VerdictAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "verdict"}, "payload": {"$ref": "#/components/schemas/VerdictPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "NewVersionPayload": {"type": "object", "additionalProperties": false, "required": ["at", "layer", "expert", "version", "parent", "submissions"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "layer": {"$ref": "#/components/schemas/Int64"}, "expert": {"$ref": "#/components/schemas/Int64"}, "version": {"$ref": "#/components/schemas/Hash"}, "parent": {"$ref": "#/components/schemas/Hash"}, "submissions": {"type": "array", "items": {"$ref": "#/components/schemas/Hash"}}, "credits": {"type": "array", "items": {"$ref": "#/components/schemas/Int64"}}}},
      "NewVersionAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "new_version"}, "payload": {"$ref": "#/components/schemas/NewVersionPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "RevenuePayload": {"type": "object", "additionalProperties": false, "required": ["at", "domain", "period", "amount", "usage"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "domain": {"type": "string"}, "period": {"type": "string"}, "amount": {"$ref": "#/components/schemas/Int64"}, "usage": {"type": "array", "items": {"$ref": "#/components/schemas/Usage"}}, "receipts_root": {"$ref": "#/components/schemas/Hash"}}},
      "RevenueAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "revenue"}, "payload": {"$ref": "#/components/schemas/RevenuePayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "CommitPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round", "commitment"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}, "commitment": {"$ref": "#/components/schemas/Hash"}}},
      "CommitAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "commit"}, "payload": {"$ref": "#/components/schemas/CommitPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
      "RevealPayload": {"type": "object", "additionalProperties": false, "required": ["at", "round", "salt", "held_out_sha256"], "properties": {"at": {"$ref": "#/components/schemas/Time"}, "round": {"type": "string"}, "salt": {"type": "string", "pattern": "^([0-9a-f]{2})+$"}, "held_out_sha256": {"$ref": "#/components/schemas/Hash"}}},
      "RevealAction": {"type": "object", "additionalProperties": false, "required": ["kind", "payload", "actor", "signature"], "properties": {"kind": {"const": "reveal"}, "payload": {"$ref": "#/components/schemas/RevealPayload"}, "actor": {"$ref": "#/components/schemas/Key"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}},
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
