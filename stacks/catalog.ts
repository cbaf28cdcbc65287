import type { EnvironmentDefinition } from "../infra/model/schema.js";
import { prod } from "./prod.js";
import { staging } from "./staging.js";

/** Every stack, validated together. `npm run new-client` appends here. */
export const catalog: EnvironmentDefinition[] = [
  prod,
  staging,
];
