/**
 * The AWS Regions Lightsail runs in, and the letters of each one's Availability Zones. The
 * schema refuses a `host.region` or `host.availabilityZone` not in this table, so a typo
 * (`eu-west-9`, `us-east-1z`) stops at `validate`, not half way through `pulumi up`.
 *
 * Sources:
 * - Regions: AWS Lightsail Developer Guide, "Regions and Availability Zones in Lightsail"
 *   (understanding-regions-and-availability-zones-in-amazon-lightsail: the fourteen Regions
 *   it lists), plus Asia Pacific (Jakarta) ap-southeast-3, which the Lightsail API reference
 *   lists among the valid `RegionName` values (API_Region, API_ResourceLocation). us-west-1
 *   is in that enum too, but no Lightsail guide offers it: it is left out.
 * - Zones: the same guide says each Region has two to six Availability Zones, named by the
 *   Region and a letter (`us-east-2a`). The letters are the zones of each Region's AZ IDs
 *   (AWS "Regions and Availability Zones", aws-availability-zones): a letter missing from a
 *   Region (ca-central-1c, ap-northeast-1b) was retired or is closed to new accounts.
 *   Lightsail may offer an account fewer: `aws lightsail get-regions
 *   --include-availability-zones` lists yours.
 */
export const LIGHTSAIL_ZONE_LETTERS = {
  "us-east-1": "abcdef",
  "us-east-2": "abc",
  "us-west-2": "abcd",
  "ca-central-1": "abd",
  "eu-west-1": "abc",
  "eu-west-2": "abc",
  "eu-west-3": "abc",
  "eu-central-1": "abc",
  "eu-north-1": "abc",
  "ap-south-1": "abc",
  "ap-northeast-1": "acd",
  "ap-northeast-2": "abcd",
  "ap-southeast-1": "abc",
  "ap-southeast-2": "abc",
  "ap-southeast-3": "abc",
} as const satisfies Record<string, string>;

export type LightsailRegion = keyof typeof LIGHTSAIL_ZONE_LETTERS;

export const LIGHTSAIL_REGIONS = Object.keys(LIGHTSAIL_ZONE_LETTERS) as LightsailRegion[];

export const isLightsailRegion = (region: string): region is LightsailRegion => Object.hasOwn(LIGHTSAIL_ZONE_LETTERS, region);

/** The Availability Zones of a Lightsail Region, e.g. us-east-2a, us-east-2b, us-east-2c. */
export const zonesOf = (region: LightsailRegion): string[] => [...LIGHTSAIL_ZONE_LETTERS[region]].map((letter) => `${region}${letter}`);
