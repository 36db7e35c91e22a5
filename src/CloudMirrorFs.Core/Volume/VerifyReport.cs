namespace CloudMirrorFs.Volume;

/// <summary>One difference found by verify: a block (or a whole file) of a facet that does not hold what the volume holds.</summary>
/// <param name="Facet">The facet.</param>
/// <param name="Path">The file's path in the volume.</param>
/// <param name="Offset">The byte offset of the differing block (-1 for the file as a whole).</param>
/// <param name="What">"content", "length", "missing" or "extra".</param>
/// <param name="Repaired">True when --repair rewrote it from a Synchronised facet.</param>
public sealed record VerifyDifference(string Facet, string Path, long Offset, string What, bool Repaired);

/// <summary>What <c>MirrorVolume.VerifyAsync</c> found.</summary>
public sealed record VerifyReport
{
    /// <summary>Every difference, repaired or not.</summary>
    public required IReadOnlyList<VerifyDifference> Differences { get; init; }

    /// <summary>Blocks read, hashed and compared.</summary>
    public long BlocksCompared { get; init; }

    /// <summary>Blocks not compared because a concurrent write was changing them (or a remote had not received it yet).</summary>
    public long BlocksSkipped { get; init; }

    /// <summary>The facets verified, and the reference they were compared with.</summary>
    public required IReadOnlyList<string> Facets { get; init; }

    /// <summary>The Synchronised local facet used as the reference.</summary>
    public required string Reference { get; init; }

    /// <summary>True when no difference remains unrepaired.</summary>
    public bool Clean => Differences.All(d => d.Repaired);
}
