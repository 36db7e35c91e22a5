namespace CloudMirrorFs.Objects;

/// <summary>One object in a listing.</summary>
/// <param name="Key">The full key.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="LastModifiedUtc">When the store last wrote it.</param>
public readonly record struct ObjectInfo(string Key, long Size, DateTime LastModifiedUtc);
