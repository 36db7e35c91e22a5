namespace CloudMirrorFs.Facets;

/// <summary>
/// Who owns the bytes handed to <see cref="IFacet.WriteKeepingAsync"/>, so that a facet can keep them instead of
/// copying them. A facet that keeps them calls <see cref="Retain"/> first and <see cref="Release"/> exactly once when
/// it no longer reads them; the owner neither changes nor reuses the bytes while any hold is kept.
/// </summary>
public interface IBufferOwner
{
    /// <summary>Takes a hold on the bytes: they stay as they are until the matching <see cref="Release"/>.</summary>
    void Retain();

    /// <summary>Gives a hold back.</summary>
    void Release();
}

/// <summary>Owners for bytes that need no counting.</summary>
public static class BufferOwner
{
    /// <summary>
    /// Bytes in an array of their own that nobody changes: the garbage collector frees them once nothing refers to them,
    /// so a hold costs nothing.
    /// </summary>
    public static IBufferOwner Collected { get; } = new CollectedOwner();

    private sealed class CollectedOwner : IBufferOwner
    {
        public void Retain()
        {
        }

        public void Release()
        {
        }
    }
}
