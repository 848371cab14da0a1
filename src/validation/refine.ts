/**
 * The `refine` object of adapter and completion requests (the schema checked its shape and ranges): the
 * step count against MAX_REFINE_STEPS, the step graph of the kind, the manifest's defaults for the fields left
 * out, and the batch of demonstrations the step graph trains on.
 */
import type { Config } from '../config/index.js';
import { HtError, limitError } from '../errors/domain-error.js';
import type { Bundle } from '../inference/bundle.js';
import type { AdapterKindName, RefineAugment } from '../inference/manifest.js';
import { refineBatch } from '../inference/refine-batch.js';
import { refineGraph } from '../inference/refine-spec.js';
import type { TextTokenizer } from '../inference/tokenizer.js';
import type { ValidRefine } from './valid.js';

export interface RefineRequest {
  steps: number;
  learning_rate?: number;
  augment?: RefineAugment;
}

export function checkRefine(
  deps: { config: Pick<Config, 'MAX_REFINE_STEPS'>; bundle: Bundle; tokenizer: TextTokenizer },
  kind: AdapterKindName,
  examples: readonly { input: string; output: string }[],
  refine: RefineRequest,
  param: string,
): ValidRefine {
  const { config, bundle, tokenizer } = deps;
  const graph = refineGraph(bundle, kind);
  if ('missing' in graph) {
    throw new HtError('HT_ERR_REFINE_UNAVAILABLE', `${param} asks to refine a ${kind} adapter; this model bundle has no training-step graph for it: ${graph.missing} is missing`);
  }
  if (refine.steps > config.MAX_REFINE_STEPS) throw limitError('HT_ERR_LIMIT_EXCEEDED', `${param}.steps`, refine.steps, config.MAX_REFINE_STEPS, 'MAX_REFINE_STEPS');
  const augment = refine.augment ?? graph.defaults.augment;
  return {
    steps: refine.steps,
    learningRate: refine.learning_rate ?? graph.defaults.learning_rate,
    augment,
    graph,
    batch: refineBatch(bundle.manifest, tokenizer, examples, augment),
  };
}
