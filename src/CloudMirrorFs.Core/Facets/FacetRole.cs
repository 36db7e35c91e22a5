namespace CloudMirrorFs.Facets;

/// <summary>How the volume manager feeds a facet.</summary>
public enum FacetRole
{
    /// <summary>Written synchronously: a write is acknowledged only once every synchronised local facet has it.</summary>
    Local,
    /// <summary>Fed asynchronously from the transaction queue.</summary>
    Remote,
}
