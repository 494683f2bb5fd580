/** Datum's `compute.datumapis.com/v1alpha` schemas (served beside v1alpha1, stored as v1alpha1). */
export * as v1alphaDeployment from './deployment.js';
export * as v1alpha from './workload.js';
