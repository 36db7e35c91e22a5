using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Replication;

/// <summary>How a resync puts a block it read from one facet into another.</summary>
internal static class BlockCopy
{
    /// <summary>
    /// Writes <paramref name="bytes"/> at <paramref name="offset"/>; a block of zeros the facet's file already reaches
    /// past is zeroed instead (<see cref="IFacet.ZeroRangeAsync"/>): a hole in a directory facet's file, nothing uploaded
    /// to an object store, so a sparse file stays sparse and its holes cost nothing on the wire. A shorter file gets
    /// the zeros written, which extends it as the source's length says.
    /// </summary>
    public static async ValueTask PutAsync(IFacet facet, FileRef file, long offset, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (!bytes.Span.ContainsAnyExcept((byte)0)
            && await facet.StatAsync(file.Path, cancellationToken).ConfigureAwait(false) is { Kind: NodeKind.File } target
            && target.Length >= offset + bytes.Length)
        {
            await facet.ZeroRangeAsync(file, offset, bytes.Length, deallocate: true, cancellationToken).ConfigureAwait(false);
            return;
        }
        await facet.WriteAsync(file, offset, bytes, cancellationToken).ConfigureAwait(false);
    }
}
