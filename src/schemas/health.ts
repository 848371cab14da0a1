import { Type } from '@sinclair/typebox';
import { ref } from './common.js';

export const HealthSchema = Type.Object(
  { status: Type.String({ description: '`ok` (alive) or `ready`' }) },
  { $id: 'Health', title: 'Health' },
);
export const Health = ref(HealthSchema);
