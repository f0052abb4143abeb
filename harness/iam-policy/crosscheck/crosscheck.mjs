// Replays the iam-policy rule table through @cloud-copilot/iam-simulate.
//
// Usage: node crosscheck.mjs <cases.json>
// Input: the array written by `cargo run -p iam-policy --example crosscheck`.
// Output (stdout): a JSON array of {name, theirs, error?}, one per case, where
// `theirs` is Allowed | ExplicitlyDenied | ImplicitlyDenied | Error.
//
// runUnsafeSimulation is used on purpose: the validating runSimulation drops
// context keys that iam-data does not list for the action (e.g. aws:TagKeys on
// lambda:InvokeFunction), which would test the key filter, not the evaluator.
import { readFileSync } from 'node:fs'
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

const [casesPath] = process.argv.slice(2)
if (!casesPath) {
  console.error('usage: node crosscheck.mjs <cases.json>')
  process.exit(2)
}

// runUnsafeSimulation (0.1.173) loads the resource policy without metadata and
// then reads metadata.name; handing it a pre-validated wrapper supplies a name.
function asResourcePolicy(document) {
  if (!document) return undefined
  return { __validated: true, policyDocument: document, metadata: { name: 'resource-policy' }, errors: [] }
}

const cases = JSON.parse(readFileSync(casesPath, 'utf8'))
const results = cases.map((c) => {
  try {
    const theirs = runUnsafeSimulation(
      {
        request: {
          // The table writes an anonymous caller as "*".
          principal: c.principal === '*' ? { type: 'Anonymous' } : c.principal,
          action: c.action,
          resource: { resource: c.resource, accountId: c.resourceAccount },
          contextVariables: c.context
        },
        identityPolicies: c.identityPolicies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: asResourcePolicy(c.resourcePolicy)
      },
      {}
    )
    return { name: c.name, theirs }
  } catch (error) {
    return { name: c.name, theirs: 'Error', error: String(error?.message ?? error) }
  }
})
process.stdout.write(JSON.stringify(results, null, 2) + '\n')
