// Starts Swagger UI on /docs. A file, not an inline script, so the page's Content-Security-Policy can
// forbid inline scripts. validatorUrl null: no badge fetched from swagger.io.
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").getAttribute("data-openapi-url"),
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
