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

    /// <summary>True when nothing would change.</summary>
    public bool IsEmpty => Mode is null && LastWriteUtc is null && LastAccessUtc is null;
}
