namespace CloudMirrorFs;

/// <summary>
/// A place in the volume: one fixed-size block of one file (the seeds' "track").
/// File ids are stable across renames, so a location never changes when its file moves.
/// </summary>
/// <param name="FileId">The volume-wide id of the file.</param>
/// <param name="Block">The zero-based block index inside the file.</param>
public readonly record struct Location(long FileId, long Block)
{
    /// <summary>
    /// The block number of a location that stands for every block of its file (<see cref="WholeFile"/>): in a remote's
    /// dirty map, a file whose bytes under its name may differ though no write of it was missed (a file renamed over
    /// another, made where another was, cut short and grown back). The reconcile of names marks its blocks.
    /// </summary>
    public const long WholeFileBlock = long.MaxValue;

    /// <summary>The location that stands for every block of <paramref name="fileId"/>.</summary>
    public static Location WholeFile(long fileId) => new(fileId, WholeFileBlock);

    /// <summary>True for a location made by <see cref="WholeFile"/>.</summary>
    public bool IsWholeFile => Block == WholeFileBlock;

    /// <inheritdoc />
    public override string ToString() => IsWholeFile ? $"file {FileId} every block" : $"file {FileId} block {Block}";
}
