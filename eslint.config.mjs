// Lints the pages' scripts (vidcorr/web/assets/*.js), a browser script with no modules and no build step.
// Run: npx eslint vidcorr/web/assets (eslint 9 with @eslint/js and globals installed).
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["vidcorr/web/assets/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: globals.browser },
  },
  {
    // The pages' helpers (common.js, inlined before each page's script) are the global VC.
    files: ["vidcorr/web/assets/**/*.js"],
    ignores: ["vidcorr/web/assets/common.js"],
    languageOptions: { globals: { VC: "readonly" } },
  },
];
