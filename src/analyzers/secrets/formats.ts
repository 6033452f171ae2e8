/*
 * Provider token formats that start with a distinctive literal prefix, after the gitleaks rule
 * set. Each is found by indexOf on its prefix and confirmed by a sticky expression from that
 * index (bounded repetition, so linear); `random` asks for the part after the prefix to look
 * random, for formats whose alphabet could also spell a word or a placeholder.
 */

/** One token format: where it starts, its exact shape, and the finding it produces. */
export interface TokenFormat {
  /** Literal, case-sensitive; the token must start a word (no token character before it). */
  readonly prefix: string;
  /** Sticky; matched at the prefix. */
  readonly shape: RegExp;
  readonly type: string;
  /** The matched text after the prefix must look random (entropy, mixed characters). */
  readonly random?: boolean;
}

const END = "(?![A-Za-z0-9])";

function format(prefix: string, shape: string, type: string, random = true): TokenFormat {
  return { prefix, shape: new RegExp(shape, "y"), type, random };
}

/** The formats, by provider. A prefix may appear more than once (several shapes share it). */
export const TOKEN_FORMATS: readonly TokenFormat[] = [
  format("hf_", `hf_[A-Za-z]{34}${END}`, "huggingface_token"),
  format("api_org_", `api_org_[A-Za-z]{34}${END}`, "huggingface_token"),
  // Bech32 (a fixed alphabet of 32 upper-case characters) makes the shape itself specific.
  format(
    "AGE-SECRET-KEY-1",
    `AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}${END}`,
    "age_secret_key",
    false,
  ),
  format("PMAK-", `PMAK-[a-f0-9]{24}-[a-f0-9]{34}${END}`, "postman_key"),
  format("dop_v1_", `dop_v1_[a-f0-9]{64}${END}`, "digitalocean_token"),
  format("doo_v1_", `doo_v1_[a-f0-9]{64}${END}`, "digitalocean_token"),
  format("dor_v1_", `dor_v1_[a-f0-9]{64}${END}`, "digitalocean_token"),
  format("shp", `shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}${END}`, "shopify_token"),
  format("sq0", `sq0(?:atp-[0-9A-Za-z_-]{22}|csp-[0-9A-Za-z_-]{43})(?![0-9A-Za-z_-])`, "square_token"),
  format("EAAA", `EAAA[A-Za-z0-9_-]{60}(?![0-9A-Za-z_-])`, "square_token"),
  format("dapi", `dapi[a-f0-9]{32}(?:-\\d)?${END}`, "databricks_token"),
  format("lin_api_", `lin_api_[A-Za-z0-9]{40}${END}`, "linear_key"),
  format("glc_", "glc_[A-Za-z0-9+/]{32,400}={0,2}", "grafana_token"),
  format("glsa_", `glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}${END}`, "grafana_token"),
  format("hvs.", "hvs\\.[A-Za-z0-9_-]{90,400}", "vault_token"),
  format("hvb.", "hvb\\.[A-Za-z0-9_-]{90,400}", "vault_token"),
  format("pul-", `pul-[a-f0-9]{40}${END}`, "pulumi_token"),
  format("dckr_pat_", "dckr_pat_[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])", "docker_token"),
  format("GOCSPX-", "GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])", "google_oauth"),
  format("ya29.", "ya29\\.[0-9A-Za-z_-]{30,2048}", "google_oauth"),
  format("xapp-", "xapp-\\d-[A-Z0-9]{1,20}-\\d{1,20}-[a-z0-9]{32,80}", "slack_token"),
  format("LTAI", `LTAI[A-Za-z0-9]{20}${END}`, "alibaba_key"),
  format("sntrys_", "sntrys_eyJ[A-Za-z0-9+/=_-]{60,400}", "sentry_token"),
  format("sntryu_", `sntryu_[a-f0-9]{64}${END}`, "sentry_token"),
  format("pscale_", "pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}", "planetscale_token"),
  format("rubygems_", `rubygems_[a-f0-9]{48}${END}`, "rubygems_key"),
  format("NRAK-", `NRAK-[A-Z0-9]{27}${END}`, "newrelic_key"),
  format("xkeysib-", `xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}${END}`, "brevo_key"),
  format("gsk_", `gsk_[A-Za-z0-9]{52}${END}`, "groq_key"),
  format("xai-", `xai-[A-Za-z0-9]{80}${END}`, "xai_key"),
  format("r8_", `r8_[A-Za-z0-9]{37}${END}`, "replicate_token"),
  format("pplx-", `pplx-[A-Za-z0-9]{48}${END}`, "perplexity_key"),
  format("sbp_", `sbp_[a-f0-9]{40}${END}`, "supabase_token"),
  format("nfp_", `nfp_[A-Za-z0-9]{36}${END}`, "netlify_token"),
  format("ATATT3", "ATATT3[A-Za-z0-9_=-]{150,250}", "atlassian_token"),
  format("ATBB", `ATBB[A-Za-z0-9_=.-]{32}${END}`, "bitbucket_token"),
  format("secret_", `secret_[A-Za-z0-9]{43}${END}`, "notion_token"),
  format("ntn_", `ntn_\\d{11}[A-Za-z0-9]{35}${END}`, "notion_token"),
  format("sk.eyJ", "sk\\.eyJ[A-Za-z0-9_-]{40,400}\\.[A-Za-z0-9_-]{20,200}", "mapbox_token"),
  format("HRKU-", "HRKU-[A-Za-z0-9_-]{60}(?![A-Za-z0-9_-])", "heroku_key"),
  format("dp.", `dp\\.(?:pt|st|sa|ct|scim|audit)\\.[A-Za-z0-9]{40,44}${END}`, "doppler_token"),
  format("ops_eyJ", "ops_eyJ[A-Za-z0-9+/=_-]{100,4096}", "onepassword_token"),
  format(
    "tskey-",
    "tskey-(?:api|auth|client|webhook|scim)-[A-Za-z0-9]{6,20}-[A-Za-z0-9]{20,80}",
    "tailscale_key",
  ),
];

/** Finding types of the formats above, with what to call them in a message. */
export const FORMAT_TYPES = {
  huggingface_token: "Hugging Face token",
  age_secret_key: "age secret key",
  postman_key: "Postman API key",
  digitalocean_token: "DigitalOcean token",
  shopify_token: "Shopify token",
  square_token: "Square token",
  databricks_token: "Databricks token",
  linear_key: "Linear API key",
  grafana_token: "Grafana token",
  vault_token: "HashiCorp Vault token",
  pulumi_token: "Pulumi token",
  docker_token: "Docker Hub token",
  google_oauth: "Google OAuth secret or access token",
  alibaba_key: "Alibaba Cloud access key",
  sentry_token: "Sentry token",
  planetscale_token: "PlanetScale token",
  rubygems_key: "RubyGems API key",
  newrelic_key: "New Relic key",
  brevo_key: "Brevo (Sendinblue) API key",
  groq_key: "Groq API key",
  xai_key: "xAI API key",
  replicate_token: "Replicate token",
  perplexity_key: "Perplexity API key",
  supabase_token: "Supabase token",
  netlify_token: "Netlify token",
  atlassian_token: "Atlassian API token",
  bitbucket_token: "Bitbucket app password",
  notion_token: "Notion token",
  mapbox_token: "Mapbox secret token",
  heroku_key: "Heroku API key",
  doppler_token: "Doppler token",
  onepassword_token: "1Password service-account token",
  tailscale_key: "Tailscale key",
} as const;
