"""Community service: publishing, likes, reports and auto-hide, remixes, the feed's sorts, search and paging."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from studio_core.models import CommunityPost, ModerationAction, PostLike, PromptReuseEvent
from studio_core.services.community import (
    AlreadyReported,
    CommunityError,
    FeedQuery,
    PostNotFound,
)
from studio_core.services.gallery import GalleryFilter
from studio_core.services.paging import BadCursor


def feed_ids(world, viewer, query: FeedQuery | None = None, limit=20) -> list[int]:
    """Every post of a feed, walking its pages to the end."""
    query = query or FeedQuery()
    ids, cursor = [], None
    while True:
        page = world.community.feed(viewer.id, query, cursor, limit=limit)
        ids += [p.id for p in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


# -- publishing ----------------------------------------------------------------------------------------------
def test_publish_shows_the_post_to_everyone_with_author_and_category(world):
    portraits = world.catalog.categories()[0]
    post = world.post(world.ada, "Harbour lights", category_id=portraits.id)
    assert (post.status, post.author_name, post.category_name, post.is_mine) == ("visible", "Ada",
                                                                                 portraits.name, True)
    seen = world.community.feed(world.bob.id).items
    assert [(p.id, p.title, p.author_name, p.like_count, p.remix_count) for p in seen] == [
        (post.id, "Harbour lights", "Ada", 0, 0)]
    assert world.community.thumbnail_url(seen[0]).endswith(".thumb.webp")


def test_publish_refuses_others_images_unfinished_ones_and_bad_titles(world):
    mine = world.image(world.ada)
    failed = world.image(world.ada, fail=True)
    with pytest.raises(PostNotFound):
        world.community.publish(world.bob.id, mine.id, "Stolen")
    with pytest.raises(CommunityError, match="finished"):
        world.community.publish(world.ada.id, failed.id, "Broken")
    with pytest.raises(CommunityError, match="title"):
        world.community.publish(world.ada.id, mine.id, "  \u200b ")
    with pytest.raises(CommunityError, match="120"):
        world.community.publish(world.ada.id, mine.id, "x" * 121)
    assert world.community.feed(world.bob.id).is_empty


def test_unpublish_and_publish_again_keeps_likes_and_date(world):
    post = world.post(world.ada, "Dunes")
    world.community.like(world.bob.id, post.id)
    world.clock.advance(days=2)
    down = world.community.unpublish(world.ada.id, post.id)
    assert down.status == "unpublished"
    assert world.community.feed(world.bob.id).is_empty
    with pytest.raises(PostNotFound):
        world.community.get_post(world.bob.id, post.id)
    again = world.community.publish(world.ada.id, post.image_id, "Dunes at noon")
    assert (again.id, again.status, again.like_count, again.created_at) == (post.id, "visible", 1,
                                                                           post.created_at)
    with pytest.raises(PostNotFound):
        world.community.unpublish(world.bob.id, post.id)


# -- likes -----------------------------------------------------------------------------------------------------
def test_double_like_counts_once_and_unlike_undoes_it(world):
    post = world.post(world.ada)
    assert world.community.like(world.bob.id, post.id) == 1
    assert world.community.like(world.bob.id, post.id) == 1  # idempotent
    assert world.community.like(world.cy.id, post.id) == 2
    assert world.community.get_post(world.bob.id, post.id).liked
    assert not world.community.get_post(world.admin.id, post.id).liked
    assert world.community.unlike(world.bob.id, post.id) == 1
    assert world.community.unlike(world.bob.id, post.id) == 1  # idempotent too
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PostLike)) == 1
        assert s.scalar(select(CommunityPost.like_count).where(CommunityPost.id == post.id)) == 1


def test_liking_your_own_post_is_refused(world):
    post = world.post(world.ada)
    with pytest.raises(CommunityError, match="own post"):
        world.community.like(world.ada.id, post.id)
    assert world.community.get_post(world.ada.id, post.id).like_count == 0


def test_hidden_posts_cannot_be_liked_and_unknown_posts_are_not_found(world):
    post = world.post(world.ada)
    world.moderation.act(world.admin, post.id, "hide", "checking")
    with pytest.raises(PostNotFound):
        world.community.like(world.bob.id, post.id)
    with pytest.raises(PostNotFound):
        world.community.like(world.bob.id, 99_999)


# -- reports ---------------------------------------------------------------------------------------------------
def test_reporting_twice_is_refused_and_own_posts_cannot_be_reported(world):
    post = world.post(world.ada)
    assert not world.community.report(world.bob.id, post.id, "spam", "buy now links").hidden_now
    with pytest.raises(AlreadyReported):
        world.community.report(world.bob.id, post.id, "nsfw")
    with pytest.raises(CommunityError, match="own post"):
        world.community.report(world.ada.id, post.id, "spam")
    with pytest.raises(CommunityError, match="reason"):
        world.community.report(world.cy.id, post.id, "boring")
    with pytest.raises(CommunityError, match="details are required"):
        world.community.report(world.cy.id, post.id, "other", "   ")
    viewed = world.community.get_post(world.bob.id, post.id)
    assert viewed.reported and viewed.report_count == 1 and viewed.status == "visible"


def test_a_post_is_hidden_automatically_at_the_report_threshold(world):
    post = world.post(world.ada)
    extra = world.user("Dee")
    assert not world.community.report(world.bob.id, post.id, "spam").hidden_now
    assert not world.community.report(world.cy.id, post.id, "nsfw").hidden_now
    assert post.id in feed_ids(world, world.admin)
    assert world.community.report(world.admin.id, post.id, "hateful", "slur in the title").hidden_now
    assert feed_ids(world, world.bob) == [] and feed_ids(world, world.admin) == []
    with pytest.raises(PostNotFound):  # a fourth reporter cannot even find it
        world.community.report(extra.id, post.id, "spam")
    with world.db.read() as s:
        action = s.scalar(select(ModerationAction))
    assert (action.action, action.post_id, action.target_user_id) == ("auto_hide", post.id, world.ada.id)
    assert world.moderation.queue(world.admin).items[0].post_id == post.id


def test_hidden_posts_are_invisible_to_others_but_shown_with_status_to_their_author(world):
    hidden = world.post(world.ada, "Hidden one")
    removed = world.post(world.ada, "Removed one")
    shown = world.post(world.ada, "Shown one")
    world.moderation.act(world.admin, hidden.id, "hide", "under review")
    world.moderation.act(world.admin, removed.id, "remove", "copyright")
    for viewer in (world.bob, world.admin):
        assert feed_ids(world, viewer) == [shown.id]
        assert feed_ids(world, viewer, FeedQuery(text="one")) == [shown.id]
        for post in (hidden, removed):
            with pytest.raises(PostNotFound):
                world.community.get_post(viewer.id, post.id)
    assert world.community.get_post(world.ada.id, hidden.id).status_label == "Hidden pending review"
    assert world.community.get_post(world.ada.id, removed.id).status_label == "Removed by moderators"
    mine = world.community.feed(world.ada.id, FeedQuery(mine=True)).items
    assert [(p.title, p.status) for p in mine] == [("Shown one", "visible"), ("Removed one", "removed"),
                                                   ("Hidden one", "hidden")]
    assert feed_ids(world, world.ada) == [shown.id]  # the public feed is the same for the author
    with pytest.raises(CommunityError, match="moderat"):
        world.community.unpublish(world.ada.id, hidden.id)
    with pytest.raises(CommunityError, match="moderation"):
        world.community.publish(world.ada.id, removed.image_id, "Sneaking back")


# -- remixes ---------------------------------------------------------------------------------------------------
def test_remix_records_lineage_and_counts_when_the_image_is_generated(world):
    source = world.post(world.ada, "Original", prompt="a paper boat on a puddle")
    start = world.community.start_remix(world.bob.id, source.id)
    assert start.recipe.final_prompt == "a paper boat on a puddle" and start.post.id == source.id
    assert world.community.get_post(world.bob.id, source.id).remix_count == 0  # a click is not a remix

    remix = world.image(world.bob, "a paper boat on a puddle, neon", remixed_from=source.image_id)
    assert remix.remixed_from_id == source.image_id
    assert world.community.get_post(world.bob.id, source.id).remix_count == 1
    with world.db.read() as s:
        events = s.execute(select(PromptReuseEvent.id, PromptReuseEvent.user_id, PromptReuseEvent.source_post_id,
                                  PromptReuseEvent.new_image_id)).all()
    assert [tuple(e)[1:] for e in events] == [(world.bob.id, source.id, remix.id)]

    world.community.on_generation_succeeded(remix)  # a resumed job reporting success again
    assert world.community.get_post(world.bob.id, source.id).remix_count == 1

    origin = world.gallery.get(world.bob.id, remix.id).remixed_from
    assert (origin.post_id, origin.label) == (source.id, "Remixed from “Original” by Ada")

    world.image(world.ada, "a paper boat, again", remixed_from=source.image_id)  # the author herself
    world.image(world.cy, "a paper boat, pastel", remixed_from=source.image_id)  # no click recorded
    assert world.community.get_post(world.bob.id, source.id).remix_count == 2
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PromptReuseEvent)
                        .where(PromptReuseEvent.new_image_id.is_not(None))) == 3


def test_a_failed_remix_is_not_counted_and_hidden_sources_are_not_linked(world):
    source = world.post(world.ada, "Original")
    world.community.start_remix(world.bob.id, source.id)
    failed = world.image(world.bob, "remix that fails", remixed_from=source.image_id, fail=True)
    assert failed.status == "failed"
    assert world.community.get_post(world.bob.id, source.id).remix_count == 0
    remix = world.image(world.bob, "remix that works", remixed_from=source.image_id)
    world.moderation.act(world.admin, source.id, "hide", "looking into it")
    origin = world.gallery.get(world.bob.id, remix.id).remixed_from
    assert origin.post_id is None and origin.label == "Remixed from an image that is no longer shared"
    with pytest.raises(PostNotFound):
        world.community.start_remix(world.cy.id, source.id)


# -- the feed --------------------------------------------------------------------------------------------------
def _posts_with_likes(world, likes: list[int], days_ago: list[float] | None = None):
    fans = [world.user(f"Fan{i}") for i in range(max(likes, default=0))]
    posts = []
    for i, n in enumerate(likes):
        post = world.post(world.ada, f"Post {i}")
        for fan in fans[:n]:
            world.community.like(fan.id, post.id)
        posts.append(post)
    if days_ago:
        with world.db.write() as s:
            for post, ago in zip(posts, days_ago, strict=True):
                s.execute(update(CommunityPost).where(CommunityPost.id == post.id)
                          .values(created_at=world.clock.now - timedelta(days=ago)))
    return posts


def test_sorts_new_top_and_most_remixed(world):
    a, b, c = _posts_with_likes(world, [1, 3, 2], days_ago=[0.1, 0.2, 0.3])
    world.image(world.bob, "remix", remixed_from=c.image_id)
    assert feed_ids(world, world.bob) == [a.id, b.id, c.id]
    assert feed_ids(world, world.bob, FeedQuery(sort="top", window="all")) == [b.id, c.id, a.id]
    assert feed_ids(world, world.bob, FeedQuery(sort="remixed"))[0] == c.id


def test_top_respects_its_time_window(world):
    posts = _posts_with_likes(world, [5, 4, 3, 2, 1], days_ago=[40, 20, 5, 0.5, 0.01])
    old, month, week, day, hour = (p.id for p in posts)
    top = lambda window: feed_ids(world, world.bob, FeedQuery(sort="top", window=window))  # noqa: E731
    assert top("all") == [old, month, week, day, hour]
    assert top("month") == [month, week, day, hour]
    assert top("week") == [week, day, hour]
    assert top("day") == [day, hour]


def test_keyset_pages_cover_every_post_exactly_once(world):
    # Ties everywhere (same like counts, same day, same remix counts): where keyset paging goes wrong if the
    # key is not unique. Page after page must give every post once, in the one-big-page order.
    ids = world.quick_posts(world.ada, [i % 3 for i in range(23)], [(i % 4) * 0.2 for i in range(23)])
    for query in (FeedQuery(), FeedQuery(sort="top", window="all"), FeedQuery(sort="top", window="week"),
                  FeedQuery(sort="top", window="day"), FeedQuery(sort="remixed"), FeedQuery(text="quick scene"),
                  FeedQuery(text="scene", sort="top", window="week"), FeedQuery(mine=True)):
        viewer = world.ada if query.mine else world.bob
        paged = feed_ids(world, viewer, query, limit=5)
        whole = [p.id for p in world.community.feed(viewer.id, query, limit=100).items]
        assert len(paged) == len(set(paged)) == 23, query
        assert paged == whole and set(paged) <= set(ids), query


def test_category_filter(world):
    portraits, landscapes = world.catalog.categories()[:2]
    p1 = world.post(world.ada, "Face", category_id=portraits.id)
    world.post(world.ada, "Hill", category_id=landscapes.id)
    for query in (FeedQuery(category_id=portraits.id), FeedQuery(category_id=portraits.id, sort="top"),
                  FeedQuery(category_id=portraits.id, sort="top", window="all")):
        assert feed_ids(world, world.bob, query) == [p1.id]


def test_a_cursor_from_another_ordering_is_refused(world):
    _posts_with_likes(world, [0, 0, 0])
    cursor = world.community.feed(world.bob.id, FeedQuery(), limit=1).next_cursor
    with pytest.raises(BadCursor):
        world.community.feed(world.bob.id, FeedQuery(sort="top", window="all"), cursor)
    with pytest.raises(BadCursor):
        world.community.feed(world.bob.id, FeedQuery(), "not-a-cursor")


# -- search ----------------------------------------------------------------------------------------------------
def test_search_matches_titles_and_prompts_newest_first(world):
    fox = world.post(world.ada, "Winter", prompt="a red fox in deep snow")
    whale = world.post(world.bob, "Blue Giant", prompt="a whale under the ice")
    fox2 = world.post(world.cy, "Fox den", prompt="cubs at play")
    search = lambda text, **kw: feed_ids(world, world.admin, FeedQuery(text=text, **kw))  # noqa: E731
    assert search("fox") == [fox2.id, fox.id]
    assert search("FOX snow") == [fox.id]  # every word must match
    assert search("giant") == [whale.id]
    assert search("fox", sort="top", window="all") == [fox2.id, fox.id]
    assert search("fox", mine=True) == []  # the admin has no posts
    world.community.publish(world.bob.id, whale.image_id, "Blue fox?")  # a new title is searchable at once
    assert search("fox") == [fox2.id, whale.id, fox.id]


def test_search_input_is_literal_text(world):
    fox = world.post(world.ada, "Winter", prompt="a red fox in deep snow")
    sale = world.post(world.bob, "Sale", prompt="poster saying 50% off")
    fox_image = world.gallery.list(world.ada.id).items[0].job.id
    for text in ["%", "_", "%%", "\\", "';--", '" ""', "*", "(", "NEAR()"]:
        # only punctuation: nothing matches (a LIKE '%' or an empty MATCH would have matched everything)
        assert feed_ids(world, world.admin, FeedQuery(text=text)) == [], text
        assert world.gallery.list(world.ada.id, GalleryFilter(text=text)).is_empty, text
    expected = {
        "' OR '1'='1": [], "fox OR whale": [],  # OR is a word to find, not an operator
        "fo*": [], "f%x": [], "f_x": [], "fox%": [fox.id],  # no prefix or LIKE wildcards
        "NEAR(fox snow)": [], "-fox": [fox.id],  # no NEAR, no NOT
        '"red fox" snow': [fox.id], "50% OFF!": [sale.id],
    }
    for text, ids in expected.items():
        assert feed_ids(world, world.admin, FeedQuery(text=text)) == ids, text
        mine = [i.job.id for i in world.gallery.list(world.ada.id, GalleryFilter(text=text)).items]
        assert mine == ([fox_image] if fox.id in ids else []), text


def test_search_finds_percent_and_quotes_as_words(world):
    sale = world.post(world.bob, "Sale", prompt="poster saying 50% off, don't miss it")
    assert feed_ids(world, world.admin, FeedQuery(text="50%")) == [sale.id]
    assert feed_ids(world, world.admin, FeedQuery(text="don't")) == [sale.id]
    assert feed_ids(world, world.admin, FeedQuery(text="60%")) == []
