namespace CloudMirrorFs.Facets;

/// <summary>
/// A file as an operation names it: its stable volume-wide id and its path at the time of the operation.
/// Facets that keep open handles key them by <see cref="Id"/> (a rename does not invalidate them); facets that
/// lay the tree out as plain files use <see cref="Path"/> to find it.
/// </summary>
/// <param name="Id">The volume-wide file id.</param>
/// <param name="Path">The volume-relative path, '/'-separated, with no leading slash ("" is the root).</param>
public readonly record struct FileRef(long Id, string Path);
