/**
 * Every named schema, registered once with fastify (swagger plugin): validation and serialization resolve the
 * routes' `$ref`s against them, and the OpenAPI document lists them under components.schemas.
 */
import type { TSchema } from '@sinclair/typebox';
import { AdapterSchema, CreateAdapterBodySchema, DeletedAdapterSchema, ExampleSchema, RefineAdapterBodySchema } from './adapters.js';
import { ErrorResponse } from '../errors/responses.js';
import { CompletionBodySchema, CompletionChoiceSchema, CompletionChunkSchema, CompletionLogprobsSchema, CompletionSchema, UsageSchema } from './completions.js';
import { HealthSchema } from './health.js';
import { ModelListSchema, ModelSchema, ModelSummarySchema } from './models.js';

export const NAMED_SCHEMAS: readonly TSchema[] = [
  ErrorResponse,
  ExampleSchema,
  CreateAdapterBodySchema,
  RefineAdapterBodySchema,
  AdapterSchema,
  DeletedAdapterSchema,
  CompletionBodySchema,
  UsageSchema,
  CompletionLogprobsSchema,
  CompletionChoiceSchema,
  CompletionSchema,
  CompletionChunkSchema,
  ModelSummarySchema,
  ModelSchema,
  ModelListSchema,
  HealthSchema,
];
