namespace CloudMirrorFs;

/// <summary>
/// A place in the volume: one fixed-size block of one file (the seeds' "track").
/// File ids are stable across renames, so a location never changes when its file moves.
/// </summary>
/// <param name="FileId">The volume-wide id of the file.</param>
/// <param name="Block">The zero-based block index inside the file.</param>
public readonly record struct Location(long FileId, long Block)
{
    /// <inheritdoc />
    public override string ToString() => $"file {FileId} block {Block}";
}
