import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, HttpMethods, ObjectOwnership, type IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct, type IConstruct } from 'constructs';
import { acknowledgeWildcardResource } from './nag';

/** Properties of {@link MediaBucket}. */
export interface MediaBucketProps {
  /**
   * Origins whose pages upload and download files (the website with the widget, the agent console).
   * @default ['*']
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Days an upload that no message named stays in `uploads/`.
   * @default 1
   */
  readonly uploadExpiryDays?: number;
  /**
   * Days a sent file under `media/` that was overwritten or deleted stays recoverable as an
   * earlier version (the bucket is versioned). Conversa deletes no sent file and writes no other
   * over one (a retried copy writes the same bytes again), so these versions are the work of a
   * mistake (a hand-run `aws s3 rm`) or of a function gone wrong; a file erased on purpose (a
   * customer's request) is gone for good only after this, unless its versions are deleted too.
   * @default 30
   */
  readonly keptVersionDays?: number;
  /**
   * What happens to the bucket (every file customers and agents sent) when the stack goes.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The files agents and web visitors attach (src/aws/media-store.ts). Private: people and providers
 * reach a file only through a presigned URL the API issues after checking who asks, so the grants
 * below are what those URLs can do. Uploads land in `uploads/` (expired), sent files are kept in `media/`.
 * Versioned, so that a sent file overwritten or deleted can be restored for `keptVersionDays`.
 */
export class MediaBucket extends Construct {
  public readonly bucket: Bucket;
  /**
   * The bucket's ARN for another stack, as `Fn::ImportValue` of an export named after this stack:
   * a name known at construction lets that stack acknowledge cdk-nag's findings on its grants.
   */
  public readonly exportedArn: string;

  constructor(scope: Construct, id: string, props: MediaBucketProps = {}) {
    super(scope, id);
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      versioned: true,
      // Browsers PUT to presigned URLs and read the files from another origin than the bucket's.
      cors: [
        { allowedOrigins: [...(props.allowedOrigins ?? ['*'])], allowedMethods: [HttpMethods.PUT], allowedHeaders: ['*'], exposedHeaders: ['etag'], maxAge: 3600 },
        // Pages read a file by following the API's redirect, which browsers send with `Origin: null`
        // (a cross-origin redirect): any origin, since the presigned URL is itself the credential.
        { allowedOrigins: ['*'], allowedMethods: [HttpMethods.GET, HttpMethods.HEAD], allowedHeaders: ['*'], maxAge: 3600 },
      ],
      lifecycleRules: [
        // An expired upload becomes an earlier version, removed a day later: unsent files stay no longer than before.
        {
          id: 'UnsentUploads',
          prefix: 'uploads/',
          expiration: Duration.days(props.uploadExpiryDays ?? 1),
          noncurrentVersionExpiration: Duration.days(1),
        },
        // Every write lands under uploads/ or media/ (the grants below), so no earlier version is kept for ever.
        { id: 'ReplacedFiles', prefix: 'media/', noncurrentVersionExpiration: Duration.days(props.keptVersionDays ?? 30) },
        // A delete marker with no version left behind it (an expired upload's) is removed too.
        { id: 'ExpiredDeleteMarkers', expiredObjectDeleteMarker: true },
        { id: 'AbandonedMultipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Objects are reached only through short-lived presigned URLs issued after an authorization check (agents and visitors by the API, providers by the outbound function for a reply); reads are not logged per object, which CloudTrail data events can add per account.',
    });
    const stack = Stack.of(this);
    this.exportedArn = stack.exportValue(this.bucket.bucketArn, { name: `${stack.stackName}-MediaBucketArn` });
  }
}

/**
 * What a function does with the media bucket:
 * - `upload`: presigned PUTs into `uploads/` (agents in the API, visitors in the widget function);
 * - `attach`: checks an upload and copies it into `media/` when a message names it;
 * - `download`: presigned GETs of kept files (consoles, the widget, providers fetching a reply's file);
 * - `keep`: writes a customer's file copied from the provider into `media/provider/`;
 * - `erase`: deletes the files of a customer being erased, every version (src/domain/erasure.ts).
 */
export type MediaAccess = 'upload' | 'attach' | 'download' | 'keep' | 'erase';

const MEDIA_GRANTS: Readonly<Record<MediaAccess, readonly { actions: string[]; prefixes: string[]; reason: string }[]>> = {
  upload: [{ actions: ['s3:PutObject'], prefixes: ['uploads/*'], reason: 'Uploads are presigned per file under uploads/; the key holds the uploader and an id issued at the same time.' }],
  attach: [
    { actions: ['s3:GetObject'], prefixes: ['uploads/*', 'media/*'], reason: 'A sent file is checked in uploads/ (or media/, on a retry) by key.' },
    // Not media/provider/: customers' files are the copy job's to write, never a sender's.
    { actions: ['s3:PutObject'], prefixes: ['media/agent/*', 'media/visitor/*'], reason: 'A sent file is copied into media/ under its uploader and upload id.' },
  ],
  download: [{ actions: ['s3:GetObject'], prefixes: ['media/*'], reason: 'Sent files are presigned one by one for the people of their conversation and its provider.' }],
  keep: [{ actions: ['s3:PutObject'], prefixes: ['media/provider/*'], reason: "A customer's file is written under its conversation and message ids." }],
  // Each version by id (the bucket is versioned): a plain delete would keep the file 30 days behind a marker.
  erase: [{ actions: ['s3:DeleteObjectVersion'], prefixes: ['media/*', 'uploads/*'], reason: "An erased customer's files are deleted by key, every version of each, as their messages name them." }],
};

/** Grants `access` on the media bucket; presigned URLs can do no more than their signer's role. */
export function grantMediaAccess(bucket: IBucket, grantee: IGrantable & IConstruct, access: MediaAccess): void {
  // ListBucket lets HeadObject answer 404 for an upload never made (403 without it).
  if (access === 'attach') Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [bucket.bucketArn] });
  // An erased file's versions are listed by its key as the prefix (ListObjectVersions): only under the two prefixes files have.
  if (access === 'erase') {
    Grant.addToPrincipal({ grantee, actions: ['s3:ListBucketVersions'], resourceArns: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': ['media/*', 'uploads/*'] } } });
  }
  for (const { actions, prefixes, reason } of MEDIA_GRANTS[access]) {
    const arns = prefixes.map((prefix) => bucket.arnForObjects(prefix));
    Grant.addToPrincipal({ grantee, actions, resourceArns: arns });
    for (const arn of arns) acknowledgeWildcardResource(grantee, arn, reason);
  }
}
