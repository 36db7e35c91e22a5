namespace CloudMirrorFs.Facets;

/// <summary>A facet that wraps another (a link, a rate limit, a fault injector): lets the engine reach the facet underneath.</summary>
public interface IFacetDecorator
{
    /// <summary>The wrapped facet.</summary>
    IFacet Inner { get; }

    /// <summary>The innermost facet under any number of decorators.</summary>
    static IFacet Unwrap(IFacet facet)
    {
        while (facet is IFacetDecorator d)
        {
            facet = d.Inner;
        }
        return facet;
    }
}
