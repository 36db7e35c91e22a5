namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>A setattr call: each non-null member is to be changed.</summary>
public readonly record struct SetAttributesRequest(
    long? Size,
    UnixFileMode? Permissions,
    uint? Uid,
    uint? Gid,
    DateTime? LastAccessUtc,
    DateTime? LastWriteUtc);
