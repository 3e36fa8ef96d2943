/** Proactive messages to contacts. */
import { notYet } from './not-yet';

export const proactiveRoute = notYet('proactive messages');
