namespace CloudMirrorFs.Facets;

/// <summary>A set-attributes request: each non-null member is applied, the others are left alone.</summary>
public sealed record AttributeChange
{
    /// <summary>New permission bits.</summary>
    public UnixFileMode? Mode { get; init; }
    /// <summary>New modification time.</summary>
    public DateTime? LastWriteUtc { get; init; }
    /// <summary>New access time.</summary>
    public DateTime? LastAccessUtc { get; init; }

    /// <summary>
    /// The file's volume-wide id when the change is to a regular file: a facet that keeps handles by id marks that
    /// file changed, so that its barrier (fsync) makes the new attributes durable. Not itself an attribute.
    /// </summary>
    public long? FileId { get; init; }

    /// <summary>True when nothing would change.</summary>
    public bool IsEmpty => Mode is null && LastWriteUtc is null && LastAccessUtc is null;
}
