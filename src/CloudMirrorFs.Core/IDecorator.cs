namespace CloudMirrorFs;

/// <summary>
/// Something that adds behaviour to another of its kind (a facet behind a link or a fault injector, a store behind a
/// codec): lets the engine reach what lies underneath.
/// </summary>
/// <typeparam name="T">The kind wrapped: <see cref="Facets.IFacet"/> or <see cref="Objects.IObjectStore"/>.</typeparam>
public interface IDecorator<T>
    where T : class
{
    /// <summary>What is wrapped.</summary>
    T Inner { get; }

    /// <summary>The innermost <typeparamref name="T"/> under any number of decorators.</summary>
    static T Unwrap(T item)
    {
        while (item is IDecorator<T> d)
        {
            item = d.Inner;
        }
        return item;
    }
}
