namespace CloudMirrorFs.Facets;

/// <summary>Capacity of the store behind a facet, for statfs.</summary>
/// <param name="TotalBytes">Total size.</param>
/// <param name="FreeBytes">Free bytes available to the volume.</param>
public readonly record struct SpaceInfo(long TotalBytes, long FreeBytes);
